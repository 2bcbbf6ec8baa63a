"""Entry point of the mlplatform plugin package (PulumiPlugin.yaml): hosts the components."""

from mlplatform.provider import main

if __name__ == "__main__":
    main()
